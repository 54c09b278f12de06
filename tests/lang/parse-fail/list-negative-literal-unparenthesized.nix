# [ -1 ] is a syntax error: list elements cannot start with unary minus
[ -1 ]
