# interpolating a list does not coerce
"${[ "a" ]}"
