# map over a non-list
map (x: x) { a = 1; }
