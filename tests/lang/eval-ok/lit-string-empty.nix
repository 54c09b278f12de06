# empty strings and empty interpolation results
[ "" "${""}" ("" + "") ]
