# helper: imports a file relative to itself
let leaf = import ./sub/leaf.nix; in { chained = leaf.name; depth = leaf.depth + 1; }
