# interpolating an integer does not coerce
"value: ${1}"
