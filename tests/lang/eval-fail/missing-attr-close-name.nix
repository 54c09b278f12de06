# selecting a misspelled attribute (prots vs ports)
let svc = { name = "web"; ports = [ 80 ]; replicas = 2; image = "nginx"; }; in svc.prots
