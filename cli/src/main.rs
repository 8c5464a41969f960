//! `payplane`: operational commands (filled in by the foundation work).

fn main() -> anyhow::Result<()> {
    Ok(())
}
