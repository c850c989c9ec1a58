# Policy files: the library every daemon reads them with, occfs-policy.
