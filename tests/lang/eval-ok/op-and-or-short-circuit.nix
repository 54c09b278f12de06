# && and || short-circuit
[ (false && throw "no") (true || throw "no") (true && false) (false || true) ]
