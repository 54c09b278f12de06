# nested interpolation inside interpolation
let a = "A"; in "1${"2${a}3"}4${"${"${a}"}"}"
