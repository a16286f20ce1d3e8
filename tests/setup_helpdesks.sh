#!/usr/bin/env bash
# Install and configure the two REAL helpdesks the ticketing-bridge tests talk to:
# Redmine 5.0 (Debian `redmine`, sqlite3, served by thin) and Request Tracker 5.0
# (Debian `request-tracker5`, sqlite, Starlet). Recipes and pitfalls: ../shared/helpdesks.md.
#
# One-time, machine-wide state only (needs root; idempotent; ~50 s from nothing, ~4 s again):
#   Redmine: REST API on, admin/admin without must_change_passwd, project "monitoring",
#            issue custom field "Alert fingerprint" (filterable).
#   RT:      /etc/request-tracker5/RT_SiteConfig.d/99-ci.pm (no syslog, mbox mail, served at /),
#            site config readable by www-data, root password $RT_ROOT_PASSWORD, bcrypt cost 4.
# Per-session state (RT token, Redmine API key, ports, server processes) belongs to the pytest
# fixtures in tests/helpdesk_servers.py. No daemon is started here.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
RT_ROOT_PASSWORD=${RT_ROOT_PASSWORD:-cipassword}   # >= 5 chars
APT=(apt-get install -y -q -o DPkg::Lock::Timeout=600 --no-install-recommends)

installed() {  # installed PKG...: every package is fully installed
  local p
  for p in "$@"; do
    dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null | grep -qx installed || return 1
  done
}
updated=
apt_update() { [ -n "$updated" ] || [ -n "${SKIP_APT_UPDATE:-}" ] || apt-get update -q; updated=1; }
as_www() {  # setpriv and env both exec: no wrapper process, files stay www-data's
  setpriv --reuid=www-data --regid=www-data --init-groups env HOME=/tmp "$@"
}

# --- Redmine -------------------------------------------------------------------------
if ! installed redmine redmine-sqlite thin; then
  apt_update
  debconf-set-selections <<'EOF'
redmine redmine/current-instances string default
redmine redmine/instances/default/dbconfig-install boolean true
redmine redmine/instances/default/database-type select sqlite3
redmine redmine/instances/default/default-language select en
EOF
  # thin: Debian's Gemfile adds it when installed; webrick is NOT usable (Gemfile.lock)
  "${APT[@]}" redmine redmine-sqlite thin
fi
grep -q '^    thin ' /var/lib/redmine/Gemfile.lock ||   # normally done by the package's trigger
  { (cd /usr/share/redmine && bundle install --local --quiet) &&
    chown www-data:www-data /var/lib/redmine/Gemfile.lock; }

setup_rb=$(mktemp /tmp/redmine-setup.XXXXXX.rb)
trap 'rm -f "$setup_rb"' EXIT
cat >"$setup_rb" <<'RUBY'
Setting.rest_api_enabled = '1'
Setting.login_required = '1'
u = User.find_by_login!('admin')
u.update!(must_change_passwd: false) if u.must_change_passwd
u.api_key                                    # creates the 'api' token if missing
Project.find_by(identifier: 'monitoring') ||
  Project.create!(name: 'Monitoring', identifier: 'monitoring', is_public: false,
                  tracker_ids: Tracker.pluck(:id), enabled_module_names: %w[issue_tracking])
IssueCustomField.find_by(name: 'Alert fingerprint') ||
  IssueCustomField.create!(name: 'Alert fingerprint', field_format: 'string', is_for_all: true,
                           is_filter: true, searchable: true, tracker_ids: Tracker.pluck(:id))
RUBY
chmod 644 "$setup_rb"
# as www-data, like the package: as root it would leave log/tmp files the server can't write
(cd /usr/share/redmine &&
  as_www REDMINE_INSTANCE=default RAILS_ENV=production bin/rails runner "$setup_rb")

# --- Request Tracker 5 -----------------------------------------------------------------
if ! installed request-tracker5 rt5-db-sqlite rt5-standalone; then
  apt_update
  # every question answered; webpath cannot be preseeded empty (99-ci.pm sets it)
  debconf-set-selections <<EOF
request-tracker5 request-tracker5/rtname string rt.ci.test
request-tracker5 request-tracker5/organization string ci.test
request-tracker5 request-tracker5/correspondaddress string rt@ci.test
request-tracker5 request-tracker5/commentaddress string rt-comment@ci.test
request-tracker5 request-tracker5/webbaseurl string http://127.0.0.1:8090
request-tracker5 request-tracker5/webpath string /rt
request-tracker5 request-tracker5/handle-siteconfig-permissions boolean true
request-tracker5 request-tracker5/install-cronjobs boolean false
request-tracker5 request-tracker5/initial-root-password password $RT_ROOT_PASSWORD
request-tracker5 request-tracker5/dbconfig-install boolean true
request-tracker5 request-tracker5/database-type select sqlite3
rt5-db-sqlite rt5-db-sqlite/available boolean true
EOF
  # pulls in exim4 as default-mta; nothing starts it (policy-rc.d) and RT writes mail to mbox
  "${APT[@]}" request-tracker5 rt5-db-sqlite rt5-standalone
fi
# RT reads RT_SiteConfig.d/*.pm in order; 99 wins. The port is each server's own: the fixture
# picks a free one and passes it as PATROL_RT_PORT (else RT warns "The requested host does NOT
# match the configured WebDomain").
cat >/etc/request-tracker5/RT_SiteConfig.d/99-ci.pm <<'EOF'
my $port = $ENV{PATROL_RT_PORT} || 8090;
Set($WebPath, '');                      # serve at / instead of /rt
Set($WebDomain, '127.0.0.1');
Set($WebPort, $port);
Set($WebBaseURL, "http://127.0.0.1:$port");
Set($LogToSyslog, undef);               # no syslog daemon here
Set($LogToSTDERR, 'warning');
Set($MailCommand, 'mbox');              # outgoing mail -> /var/lib/request-tracker5/*.mbox
# Tests only: RT bcrypt-checks the password, or EVERY auth token of the user in turn, on every
# request; at the default cost 12 that is ~250 ms per check on a small machine.
Set($BcryptCost, 4);
1;
EOF
# created 0600 root:root: as www-data RT could not read it ("Permission denied")
chown root:www-data /etc/request-tracker5/RT_SiteConfig.d/99-ci.pm \
  /etc/request-tracker5/RT_SiteConfig.pm
chmod 640 /etc/request-tracker5/RT_SiteConfig.d/99-ci.pm /etc/request-tracker5/RT_SiteConfig.pm
echo "setup_helpdesks: redmine and request-tracker5 ready"
