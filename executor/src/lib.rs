//! The executor: walks a plan against real systems (Docker engine, OCI registry, Kubernetes).
//! (Built under the executor issue.)
