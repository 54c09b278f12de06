# only the taken branch is evaluated
[ (if true then "ok" else throw "no") (if false then abort "no" else "ok") ]
