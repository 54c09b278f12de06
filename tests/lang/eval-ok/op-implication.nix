# -> is implication, right-associative and lowest precedence
[ (true -> false) (false -> throw "no") (true -> true) (false -> false -> false) (true -> false -> false) (true || false -> false) ]
