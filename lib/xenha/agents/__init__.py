"""The OCF resource agents of provider `xenha`; `agents/` at the top holds their launchers."""
