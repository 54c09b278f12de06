# nested attribute paths in let bindings
let a.b = 1; a.c = 2; in a
