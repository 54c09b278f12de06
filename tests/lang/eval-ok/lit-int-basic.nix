# integer literals including zero, leading zeros and negation
[ 0 1 42 007 (-5) (- 3) 1234567890 ]
