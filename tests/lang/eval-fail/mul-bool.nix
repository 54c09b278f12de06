# multiplying booleans
true * 2
