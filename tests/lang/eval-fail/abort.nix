# abort aborts evaluation
abort "fatal"
