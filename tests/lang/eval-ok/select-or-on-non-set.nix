# `or` default also applies when selecting from a non-set
[ ((1).a or 2) ({ a = 1; }.a.b or 3) ("s".x or "def") ]
