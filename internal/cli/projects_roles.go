package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/deltaci/deltaci/internal/protocol"
)

// parseGrant reads PRINCIPAL=ROLE; the principal may hold '=' (a group's
// name), the role never does.
func parseGrant(s string) (protocol.RoleBinding, error) {
	i := strings.LastIndexByte(s, '=')
	if i <= 0 || i == len(s)-1 {
		return protocol.RoleBinding{}, usage(fmt.Errorf("--grant %q: give PRINCIPAL=ROLE, such as ada@example.com=maintainer or group:ci-admins=admin", s))
	}
	return protocol.RoleBinding{Principal: s[:i], Role: s[i+1:]}, nil
}

func newProjectRolesCmd(e env, o *projectsOptions) *cobra.Command {
	var grants, revokes []string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "roles NAME [--grant PRINCIPAL=ROLE]... [--revoke PRINCIPAL]...",
		Short: "Show, grant and revoke who may do what with a project in the web UI",
		Long: `Roles decide what a person signed in to the web UI may do with a project:
viewer reads its runs and logs, maintainer also cancels and reruns them, admin
also changes the project. A binding names a principal:

  EMAIL            a user by e-mail address, when the OpenID provider says it
                   is verified (ada@example.com)
  sub:SUBJECT      a user by the provider's subject id (sub:00u1x2y3)
  group:NAME       everyone in a group of the provider's group claim
                   (group:ci-admins; see the server's --oidc-role-claim)

A user gets the highest role of the bindings that match them. The server's
--oidc-admins are admins of every project, and everyone (even signed out) is
a viewer of a public project (deltaci projects set NAME --public). Without
flags, this prints the bindings; --revoke goes first, then --grant, which
replaces a principal's role. Needs an admin API token.`,
		Example: `  deltaci projects roles web --grant ada@example.com=maintainer --grant group:ci-admins=admin
  deltaci projects roles web --revoke ada@example.com
  deltaci projects roles web`,
		Args: checkArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client(e)
			if err != nil {
				return err
			}
			var roles []protocol.RoleBinding
			if len(grants) == 0 && len(revokes) == 0 {
				roles, err = c.ProjectRoles(cmd.Context(), args[0])
			} else {
				patch := protocol.RolesPatch{Revoke: revokes}
				for _, g := range grants {
					b, err := parseGrant(g)
					if err != nil {
						return err
					}
					patch.Grant = append(patch.Grant, b)
				}
				roles, err = c.UpdateProjectRoles(cmd.Context(), args[0], patch)
			}
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if asJSON {
				return writeIndented(w, protocol.RoleList{Roles: roles})
			}
			if len(roles) == 0 {
				_, err := fmt.Fprintf(w, "no roles on %s: only the server's admins (and everyone, if it is public) see it in the web UI\n", args[0])
				return err
			}
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "PRINCIPAL\tROLE\tSINCE")
			for _, b := range roles {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", b.Principal, b.Role, b.CreatedAt.Local().Format(time.DateTime))
			}
			return tw.Flush()
		},
	}
	// StringArray, not StringSlice: a group's name may hold a comma.
	cmd.Flags().StringArrayVar(&grants, "grant", nil, "give PRINCIPAL=ROLE (EMAIL, sub:SUBJECT or group:NAME = viewer, maintainer or admin); repeat for more")
	cmd.Flags().StringArrayVar(&revokes, "revoke", nil, "take PRINCIPAL's role away; repeat for more")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON for scripts")
	return cmd
}
