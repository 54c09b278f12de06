# && binds tighter than ||
[ (true || false && false) ((true || false) && false) (false && true || true) ]
