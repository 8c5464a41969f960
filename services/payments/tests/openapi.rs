//! `GET /openapi.json` (api.md §8.3): raw, equal to `payplane_payments::openapi()`, and describing
//! exactly the served public routes. The served paths come from the router's own route table;
//! each method of each path is probed over HTTP, so neither side can drift silently.

payplane_kit::openapi_served_test!(payplane_payments);
