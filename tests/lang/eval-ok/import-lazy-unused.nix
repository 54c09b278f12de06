# import of a missing file is not evaluated if unused
let unused = import ./lib/does-not-exist.nix; in "fine"
