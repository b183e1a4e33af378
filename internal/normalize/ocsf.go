package normalize

// OCSFVersion is the OCSF schema version the OCSF normalizers write
// (metadata.version).
const OCSFVersion = "1.8.0"

// The OCSF classes the normalizers route events to. Keeping the choice in
// these constants and in route values lets a later schema version (1.9
// replaces Account Change and User Access Management with User
// Management) be dropped in by changing the routing functions only.
const (
	classAccountChange    = 3001
	classAuthentication   = 3002
	classEntityManagement = 3004
	classUserAccess       = 3005
	classGroupManagement  = 3006
	classAPIActivity      = 6003
)

// Activity ids shared by every class.
const (
	activityUnknown = 0
	activityOther   = 99
)

// Activity ids of the classes, as OCSF 1.8.0 numbers them.
const (
	// Account Change.
	acCreate        = 1
	acEnable        = 2
	acPasswordChg   = 3
	acPasswordReset = 4
	acDisable       = 5
	acDelete        = 6
	acLock          = 9
	acMFAEnable     = 10
	acMFADisable    = 11
	acUnlock        = 12
	// Authentication.
	authLogon  = 1
	authLogoff = 2
	// Entity Management and API Activity share 1 to 4.
	emCreate = 1
	emRead   = 2
	emUpdate = 3
	emDelete = 4
	// User Access Management.
	uaAssign = 1
	uaRevoke = 2
	// Group Management.
	gmAssign     = 1
	gmRevoke     = 2
	gmAddUser    = 3
	gmRemoveUser = 4
	gmDelete     = 5
	gmCreate     = 6
)

// Status ids.
const (
	statusUnknown = 0
	statusSuccess = 1
	statusFailure = 2
	statusOther   = 99
)

// Severity ids.
const (
	sevInformational = 1
	sevLow           = 2
	sevMedium        = 3
	sevHigh          = 4
)

// route is the class and activity one event maps to. name is the
// activity_name written for activityOther (the source's own verb).
type route struct {
	class, activity int
	name            string
}

// className returns the caption of an OCSF class.
func className(class int) string {
	switch class {
	case classAccountChange:
		return "Account Change"
	case classAuthentication:
		return "Authentication"
	case classEntityManagement:
		return "Entity Management"
	case classUserAccess:
		return "User Access Management"
	case classGroupManagement:
		return "Group Management"
	case classAPIActivity:
		return "API Activity"
	}
	return ""
}

// activityName returns the caption of activity id of class.
func activityName(class, id int) string {
	switch id {
	case activityUnknown:
		return "Unknown"
	case activityOther:
		return "Other"
	}
	switch class {
	case classAccountChange:
		return [...]string{1: "Create", 2: "Enable", 3: "Password Change", 4: "Password Reset", 5: "Disable", 6: "Delete",
			7: "Attach Policy", 8: "Detach Policy", 9: "Lock", 10: "MFA Factor Enable", 11: "MFA Factor Disable", 12: "Unlock"}[id]
	case classAuthentication:
		return [...]string{1: "Logon", 2: "Logoff", 3: "Authentication Ticket", 4: "Service Ticket Request",
			5: "Service Ticket Renew", 6: "Preauth", 7: "Account Switch"}[id]
	case classEntityManagement:
		return [...]string{1: "Create", 2: "Read", 3: "Update", 4: "Delete", 5: "Move", 6: "Enroll", 7: "Unenroll",
			8: "Enable", 9: "Disable", 10: "Activate", 11: "Deactivate", 12: "Suspend", 13: "Resume"}[id]
	case classUserAccess:
		return [...]string{1: "Assign Privileges", 2: "Revoke Privileges"}[id]
	case classGroupManagement:
		return [...]string{1: "Assign Privileges", 2: "Revoke Privileges", 3: "Add User", 4: "Remove User",
			5: "Delete", 6: "Create", 7: "Add Subgroup", 8: "Remove Subgroup"}[id]
	case classAPIActivity:
		return [...]string{1: "Create", 2: "Read", 3: "Update", 4: "Delete"}[id]
	}
	return ""
}

func severityName(id int) string {
	return [...]string{0: "Unknown", 1: "Informational", 2: "Low", 3: "Medium", 4: "High", 5: "Critical", 6: "Fatal"}[id]
}

func statusName(id int) string {
	switch id {
	case statusSuccess:
		return "Success"
	case statusFailure:
		return "Failure"
	case statusOther:
		return "Other"
	}
	return "Unknown"
}

// appendClass appends the classification members of an event of route
// rt: class, category, activity, type and severity, ids and captions.
func appendClass(b []byte, rt route, severity int) []byte {
	cat, catName := 3, "Identity & Access Management"
	if rt.class/1000 == 6 {
		cat, catName = 6, "Application Activity"
	}
	b = putInt(b, "class_uid", int64(rt.class))
	b = putStr(b, "class_name", className(rt.class))
	b = putInt(b, "category_uid", int64(cat))
	b = putStr(b, "category_name", catName)
	b = putInt(b, "activity_id", int64(rt.activity))
	name := activityName(rt.class, rt.activity)
	if rt.activity == activityOther && rt.name != "" {
		b = putStr(b, "activity_name", rt.name)
	} else {
		b = putStr(b, "activity_name", name)
	}
	b = putInt(b, "type_uid", int64(rt.class*100+rt.activity))
	b = key(b, "type_name")
	b = append(b, '"')
	b = append(b, className(rt.class)...)
	b = append(b, ": "...)
	b = append(b, name...)
	b = append(b, '"')
	b = putInt(b, "severity_id", int64(severity))
	return putStr(b, "severity", severityName(severity))
}

// appendStatus appends status_id and its caption; for statusOther the
// caption is the source's raw status text, when there is one.
func appendStatus(b []byte, status int, source []byte) []byte {
	b = putInt(b, "status_id", int64(status))
	if status == statusOther && len(source) > 0 {
		return putRaw(b, "status", source)
	}
	return putStr(b, "status", statusName(status))
}

// product is the metadata.product of one source.
type product struct {
	name, vendor, logName string
}

// appendMetadataStart opens metadata and writes product (with the raw
// string feature as product.feature.name when it is set), version and
// log_name; the caller adds its own members and closes the object.
func appendMetadataStart(b []byte, p product, feature []byte) ([]byte, int) {
	mark := len(b)
	b = open(b, "metadata")
	pm := len(b)
	b = open(b, "product")
	b = putStr(b, "name", p.name)
	b = putStr(b, "vendor_name", p.vendor)
	if len(feature) > 0 {
		fm := len(b)
		b = open(b, "feature")
		b = putRaw(b, "name", feature)
		b = closeObj(b, fm)
	}
	b = closeObj(b, pm)
	b = putStr(b, "version", OCSFVersion)
	b = putStr(b, "log_name", p.logName)
	return b, mark
}

// appendRawData appends raw_data: the provider event as a JSON string.
func appendRawData(b, data []byte) []byte {
	return appendJSONBytes(key(b, "raw_data"), data)
}

// userTypeName returns the caption of an OCSF user type_id.
func userTypeName(id int) string {
	return [...]string{0: "Unknown", 1: "User", 2: "Admin", 3: "System", 4: "Service"}[id]
}

// User type ids.
const (
	userTypeUser    = 1
	userTypeSystem  = 3
	userTypeService = 4
)
