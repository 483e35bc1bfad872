//! mooring-testkit.
