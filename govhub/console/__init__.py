"""The web console (管理与服务门户): server-rendered pages for administrators, staff, window clerks and holders."""
