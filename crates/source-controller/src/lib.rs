//! mooring-source-controller.
