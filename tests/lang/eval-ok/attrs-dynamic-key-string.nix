# dynamic keys written as "${k}"
let k = "dyn"; in { "${k}" = 1; "${k}2" = 2; "pre-${k}" = 3; }
