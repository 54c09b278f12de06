# the with expression is not evaluated unless a lookup falls through
with throw "not evaluated"; 1
