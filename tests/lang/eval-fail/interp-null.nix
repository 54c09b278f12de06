# interpolating null
"x${null}"
