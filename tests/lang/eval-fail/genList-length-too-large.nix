# a list no memory can hold is an error, not a crash (it was a capacity-overflow panic)
builtins.length (builtins.genList (x: x) 9223372036854775807)
