# toString on ints, strings, bools and null
[ (toString 42) (toString (-3)) (toString "s") (toString true) (toString false) (toString null) ]
