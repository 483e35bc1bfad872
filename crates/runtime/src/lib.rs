//! mooring-runtime.
