# `x.a or d` binds tighter than +
[ ({ a = 1; }.b or 3 + 1) ({ a = 1; }.a or 3 + 1) ]
