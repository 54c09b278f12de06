# a/b without spaces is a path, with spaces is division
a: b: [ (a / b) ./a/b a/b ]
