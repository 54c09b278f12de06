# x:x without space is a URI string, not a lambda
[ (builtins.typeOf x:x) (builtins.typeOf (x: x)) x:x ]
