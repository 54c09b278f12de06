# undefined variables are detected by the parser
x
