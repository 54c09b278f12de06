# boolean negation and its precedence over ==
[ (!true) (!false) (!!true) (!true == false) (! { } ? a) ]
