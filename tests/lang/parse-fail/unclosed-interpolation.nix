# unclosed ${ inside a string
"a ${ "b" c"
