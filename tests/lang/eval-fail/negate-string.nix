# unary minus on a string
-"a"
