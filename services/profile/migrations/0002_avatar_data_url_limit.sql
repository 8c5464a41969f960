-- api.md §7 (changelog review 2): avatar data URLs up to 2 796 220 characters, a 2 MiB image in
-- base64, the limit existing web clients were built for.
ALTER TABLE user_profiles DROP CONSTRAINT IF EXISTS user_profiles_avatar_url_check;
ALTER TABLE user_profiles ADD CONSTRAINT user_profiles_avatar_url_check
    CHECK (char_length(avatar_url) <= 2796220);
