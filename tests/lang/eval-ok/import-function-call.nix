# importing a file whose value is a function and calling it
import ./lib/make-service.nix { name = "api"; }
