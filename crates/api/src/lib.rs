//! mooring-api.
