# helper for import-cycle: imports cycle-b.nix
import ./cycle-b.nix
