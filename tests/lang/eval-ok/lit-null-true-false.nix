# null, true and false literals
[ null true false ]
