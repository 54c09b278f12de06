# non-rec sets do not bind their own attributes
let a = "outer"; in { a = "inner"; b = a; }
