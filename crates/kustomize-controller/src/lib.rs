//! mooring-kustomize-controller.
