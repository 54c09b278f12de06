# importing the same file twice gives equal values
let a = import ./lib/helper.nix; b = import ./lib/helper.nix; in [ (a.greeting == b.greeting) a.greeting b.greeting (a.double 2) ]
