# tryEval only forces to weak head normal form
let r = builtins.tryEval [ (throw "inner") ]; in [ r.success (builtins.length r.value) ]
