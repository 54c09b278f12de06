# list comparison of mismatched element types
[ 1 "a" ] < [ 1 2 ]
