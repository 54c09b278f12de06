# the function given to map is checked when an element is used
map 1 [ 1 ]
