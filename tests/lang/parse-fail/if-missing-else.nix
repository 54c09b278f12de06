# if without else
if true then 1
