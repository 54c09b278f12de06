# ! on a non-bool
!1
