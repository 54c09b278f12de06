# fromJSON with trailing garbage
builtins.fromJSON "[1] x"
